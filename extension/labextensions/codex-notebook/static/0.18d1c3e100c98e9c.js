"use strict";(self.rspackChunkcodex_notebook=self.rspackChunkcodex_notebook||[]).push([[0],{13(o,r,t){var e=t(14),n=t.n(e),s=t(15),a=(t.n(s))()(n());a.push([o.id,`/*
 * The "Insert cell N below" / "Copy" bar under a finished %%codex turn's output
 * (src/proposalbar.ts). Only JupyterLab's theme variables: it follows the light and dark
 * themes (and any other) in JupyterLab and Notebook 7.
 *
 * Every rule is scoped to the bar as a direct child of the output item the extension marked
 * (cxn-proposals-host): the same class names inside an output's own HTML style nothing.
 */

/* An output item is a flex row (prompt, output): let the bar take a line of its own. */
.jp-OutputArea-child.cxn-proposals-host {
  flex-wrap: wrap;
}

.jp-OutputArea-child.cxn-proposals-host > .jp-OutputArea-output {
  /* Fill the rest of the first line; without this its width: 100% would wrap it under the
     prompt. */
  flex: 1 1 0;
  min-width: 0;
}

.cxn-proposals-host > .cxn-proposals {
  flex: 0 0 100%;
  box-sizing: border-box;
  display: flex;
  flex-direction: column;
  gap: 4px;
  /* Under the output, not under the prompt. */
  padding: 2px 0 6px calc(var(--jp-cell-prompt-width) + var(--jp-border-width));
  font-family: var(--jp-ui-font-family);
  font-size: var(--jp-ui-font-size1);
  line-height: 18px;
  color: var(--jp-ui-font-color1);
  user-select: none;
}

.cxn-proposals-host > .cxn-proposals .cxn-proposals-row {
  display: flex;
  align-items: center;
  gap: 6px;
  min-width: 0;
}

.cxn-proposals-host > .cxn-proposals .cxn-proposals-button {
  flex: none;
  margin: 0;
  padding: 1px 10px;
  font: inherit;
  line-height: 20px;
  color: var(--jp-ui-font-color1);
  background: var(--jp-layout-color1);
  border: var(--jp-border-width) solid var(--jp-border-color1);
  border-radius: var(--jp-border-radius);
  cursor: pointer;
}

.cxn-proposals-host > .cxn-proposals .cxn-proposals-button:hover {
  background: var(--jp-layout-color2);
}

.cxn-proposals-host > .cxn-proposals .cxn-proposals-button:active {
  background: var(--jp-layout-color3);
}

.cxn-proposals-host > .cxn-proposals .cxn-proposals-button:focus-visible {
  outline: 2px solid var(--jp-brand-color1);
  outline-offset: 1px;
}

.cxn-proposals-host > .cxn-proposals .cxn-proposals-insert {
  color: var(--jp-ui-inverse-font-color1);
  background: var(--jp-brand-color1);
  border-color: var(--jp-brand-color1);
}

.cxn-proposals-host > .cxn-proposals .cxn-proposals-insert:hover {
  background: var(--jp-brand-color0);
  border-color: var(--jp-brand-color0);
}

.cxn-proposals-host > .cxn-proposals .cxn-proposals-insert:active {
  background: var(--jp-brand-color0);
}

.cxn-proposals-host > .cxn-proposals .cxn-proposals-preview {
  min-width: 0;
  overflow: hidden;
  text-overflow: ellipsis;
  white-space: pre;
  font-family: var(--jp-code-font-family);
  font-size: var(--jp-code-font-size);
  color: var(--jp-ui-font-color2);
  user-select: text;
}

.cxn-proposals-host > .cxn-proposals .cxn-proposals-status {
  color: var(--jp-ui-font-color2);
}

.cxn-proposals-host > .cxn-proposals .cxn-proposals-status:empty {
  display: none;
}

.cxn-proposals-host > .cxn-proposals .cxn-proposals-status.cxn-mod-error {
  color: var(--jp-error-color1);
}

/* JupyterLab puts the prompt above the output on narrow screens: so is the bar. */
@media only screen and (width <= 760px) {
  .cxn-proposals-host > .cxn-proposals {
    padding-left: 0;
  }
}

@media print {
  .cxn-proposals-host > .cxn-proposals {
    display: none;
  }
}
`,""]),t.d(r,{},{A:a})},15(o){o.exports=function(o){var r=[];return r.toString=function(){return this.map(function(r){var t="",e=void 0!==r[5];return r[4]&&(t+="@supports (".concat(r[4],") {")),r[2]&&(t+="@media ".concat(r[2]," {")),e&&(t+="@layer".concat(r[5].length>0?" ".concat(r[5]):""," {")),t+=o(r),e&&(t+="}"),r[2]&&(t+="}"),r[4]&&(t+="}"),t}).join("")},r.i=function(o,t,e,n,s){"string"==typeof o&&(o=[[null,o,void 0]]);var a={};if(e)for(var p=0;p<this.length;p++){var c=this[p][0];null!=c&&(a[c]=!0)}for(var l=0;l<o.length;l++){var i=[].concat(o[l]);e&&a[i[0]]||(void 0!==s&&(void 0===i[5]||(i[1]="@layer".concat(i[5].length>0?" ".concat(i[5]):""," {").concat(i[1],"}")),i[5]=s),t&&(i[2]&&(i[1]="@media ".concat(i[2]," {").concat(i[1],"}")),i[2]=t),n&&(i[4]?(i[1]="@supports (".concat(i[4],") {").concat(i[1],"}"),i[4]=n):i[4]="".concat(n)),r.push(i))}},r}},14(o){o.exports=function(o){return o[1]}},6(o,r,t){t.r(r);var e=t(7),n=t.n(e),s=t(8),a=t.n(s),p=t(9),c=t.n(p),l=t(10),i=t.n(l),u=t(11),d=t.n(u),h=t(12),f=t.n(h),x=t(13),v={};v.styleTagTransform=f(),v.setAttributes=i(),v.insert=c().bind(null,"head"),v.domAPI=a(),v.insertStyleElement=d(),n()(x.A,v);let m=x.A&&x.A.locals?x.A.locals:void 0;t.d(r,{},{default:m})},7(o){var r=[];function t(o){for(var t=-1,e=0;e<r.length;e++)if(r[e].identifier===o){t=e;break}return t}function e(o,e){for(var n={},s=[],a=0;a<o.length;a++){var p=o[a],c=e.base?p[0]+e.base:p[0],l=n[c]||0,i="".concat(c," ").concat(l);n[c]=l+1;var u=t(i),d={css:p[1],media:p[2],sourceMap:p[3],supports:p[4],layer:p[5]};if(-1!==u)r[u].references++,r[u].updater(d);else{var h=function(o,r){var t=r.domAPI(r);return t.update(o),function(r){r?(r.css!==o.css||r.media!==o.media||r.sourceMap!==o.sourceMap||r.supports!==o.supports||r.layer!==o.layer)&&t.update(o=r):t.remove()}}(d,e);e.byIndex=a,r.splice(a,0,{identifier:i,updater:h,references:1})}s.push(i)}return s}o.exports=function(o,n){var s=e(o=o||[],n=n||{});return function(o){o=o||[];for(var a=0;a<s.length;a++){var p=t(s[a]);r[p].references--}for(var c=e(o,n),l=0;l<s.length;l++){var i=t(s[l]);0===r[i].references&&(r[i].updater(),r.splice(i,1))}s=c}}},9(o){var r={};o.exports=function(o,t){var e=function(o){if(void 0===r[o]){var t=document.querySelector(o);if(window.HTMLIFrameElement&&t instanceof window.HTMLIFrameElement)try{t=t.contentDocument.head}catch(o){t=null}r[o]=t}return r[o]}(o);if(!e)throw Error("Couldn't find a style target. This probably means that the value for the 'insert' parameter is invalid.");e.appendChild(t)}},11(o){o.exports=function(o){var r=document.createElement("style");return o.setAttributes(r,o.attributes),o.insert(r,o.options),r}},10(o,r,t){o.exports=function(o){var r=t.nc;r&&o.setAttribute("nonce",r)}},8(o){o.exports=function(o){if("u"<typeof document)return{update:function(){},remove:function(){}};var r=o.insertStyleElement(o);return{update:function(t){var e,n,s;e="",t.supports&&(e+="@supports (".concat(t.supports,") {")),t.media&&(e+="@media ".concat(t.media," {")),(n=void 0!==t.layer)&&(e+="@layer".concat(t.layer.length>0?" ".concat(t.layer):""," {")),e+=t.css,n&&(e+="}"),t.media&&(e+="}"),t.supports&&(e+="}"),(s=t.sourceMap)&&"u">typeof btoa&&(e+="\n/*# sourceMappingURL=data:application/json;base64,".concat(btoa(unescape(encodeURIComponent(JSON.stringify(s))))," */")),o.styleTagTransform(e,r,o.options)},remove:function(){var o;null===(o=r).parentNode||o.parentNode.removeChild(o)}}}},12(o){o.exports=function(o,r){if(r.styleSheet)r.styleSheet.cssText=o;else{for(;r.firstChild;)r.removeChild(r.firstChild);r.appendChild(document.createTextNode(o))}}}}]);